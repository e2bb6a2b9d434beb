"""The nginx edge: the config template rendered from the validator's wire contract, and nginx
run from a private prefix."""
