"""The CDNs' own token formats, emitted and verified from one PlayGate policy.

One module per format (``secure_link``, ``akamai``, ``cloudfront``, ``jwt_playback``), each with
pure ``emit`` and ``verify`` functions and an explicit clock; ``policy`` holds what they share:
the policy one signer request becomes, the access a verified foreign token grants, and the one
judge of expiry, scope and client network. Not part of the Lambda@Edge core: the public-key
formats need ``cryptography`` and ``pyjwt``.
"""
