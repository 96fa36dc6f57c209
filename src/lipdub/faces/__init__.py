"""Face analysis building blocks: detection + landmarks, tracking, pose, filters, shots, active speaker."""
