"""Read models that aggregate several apps, composed from the apps' selectors."""
