"""The workbench's pages, one module per screen."""

from strata.workbench.pages import branch, customer, home, operations, pricing, segments, signin

ROUTERS = [signin.router, home.router, customer.router, branch.router, segments.router, pricing.router,
           operations.router]
