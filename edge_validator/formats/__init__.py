"""The CDNs' own token formats, emitted and verified from one PlayGate policy (docs/formats.md).

One module per format (``secure_link``, ``akamai``, ``cloudfront``, ``mediacdn``,
``jwt_playback``), each with pure ``emit`` and ``verify`` functions and an explicit clock;
``policy`` holds what they share: the policy one signer request becomes, the access a verified
foreign token grants, and the one judge of expiry, scope and client network. ``keys`` reads
their keys, ``config`` the settings, ``jwks`` publishes and fetches public keys, ``accept`` is
the validator's side (recognise, authenticate, judge) and ``emit`` the signer's. Not part of the
Lambda@Edge core: the public-key formats need ``cryptography`` and ``pyjwt``.
"""
