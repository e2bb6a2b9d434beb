"""The verification core: token format, key ring, path rules, addresses, the decision, errors.

Standard library only, and nothing outside this folder: the Lambda@Edge bundle ships it whole.
"""
