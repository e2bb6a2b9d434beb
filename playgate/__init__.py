"""Operating PlayGate: the ``playgate`` CLI for both services, ``explain``, the nginx edge
config and runner, the Lambda@Edge bundle builder, and the demo."""
