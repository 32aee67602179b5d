"""Capture node: device, file or test-signal audio as fixed-size blocks stamped with capture time."""
