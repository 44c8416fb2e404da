"""Many runs at once: seeds x grid, and same-shaped models stacked into one."""
