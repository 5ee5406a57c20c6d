"""Configs, one per dataset family: each module has `get_config() -> ml_collections.ConfigDict`."""
