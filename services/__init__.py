"""Strata's five services, each built on one plan: domain, models, service, views, messaging,
metrics."""
