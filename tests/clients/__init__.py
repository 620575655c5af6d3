"""Tests that drive real registry clients (skopeo, podman, oras) against a
running entrepot, and through the reference registry."""
