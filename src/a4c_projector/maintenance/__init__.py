"""Operating a projection: rebuild, compare, audit, show and lag."""
