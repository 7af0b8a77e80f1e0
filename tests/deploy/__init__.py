"""Deployment files (deploy/, docker-compose.yml) checked with real validators, without Docker."""
