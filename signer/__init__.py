"""PlayGate signer: issues playback URLs and revocations for the platform's app backend."""
