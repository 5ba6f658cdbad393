"""The workbench (工作台): the screens relationship managers, branch managers, head-office
analysts and operators use, server-rendered from Strata's public HTTP API only.

It holds no data and enforces nothing itself: every page is built from API answers made with
the signed-in user's own bearer token, so each role sees exactly what the API lets it see. In
``strata run`` it is mounted on the API's own app and calls it in-process (httpx's ASGI
transport); ``strata serve workbench`` runs it as its own process that reaches the API at
``workbench.api_url`` (the gateway).
"""

from strata.workbench.app import create_workbench, mount_workbench

__all__ = ["create_workbench", "mount_workbench"]
