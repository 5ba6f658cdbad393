"""Strata's common library: contracts, bus, database, settings, metrics, auth."""
