"""Surface-flux models: the VISIT-like biosphere, ocean, inventories, fire and the flux composer."""
