"""What a run looks like: plots, the HTML report, the comparison table across runs."""
