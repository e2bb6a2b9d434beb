"""CTA-5007 Common Access Token: a CWT (RFC 8392) in COSE (RFC 9052), stdlib only.

cbor.py (strict decoding, deterministic encoding), keys.py (algorithms pinned per key id),
cose.py (COSE_Mac0 / COSE_Sign1), claims.py (CAT claims onto PlayGate's rules), verify.py.
"""
