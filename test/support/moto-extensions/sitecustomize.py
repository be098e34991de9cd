"""Adds to moto_server the RDS Proxy action tenantflow needs and moto (5.x) lacks: ModifyDBProxy.

Python imports ``sitecustomize`` at start-up from any directory on ``PYTHONPATH``; the test run's
global setup puts this directory there when it starts moto_server. Everything else about the proxy
(CreateDBProxy, DescribeDBProxies, the XML both return, the faults) is moto's own.

ModifyDBProxy behaves as the RDS API documents it: ``Auth`` REPLACES the proxy's whole auth list,
and the proxy is ``modifying`` for a while afterwards, during which another ModifyDBProxy is
refused with ``InvalidDBProxyStateFault``. Here "a while" is the next
``MODIFYING_DESCRIBES`` DescribeDBProxies calls, so clients that wait for ``available`` get there.
"""

try:
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import DBProxyNotFoundFault, RDSClientError
    from moto.rds.models import RDSBackend
    from moto.rds.responses import RDSResponse
except ImportError:  # not the interpreter running moto_server: nothing to extend
    RDSBackend = None

MODIFYING_DESCRIBES = 2


if RDSBackend is not None and not hasattr(RDSResponse, "modify_db_proxy"):

    class InvalidDBProxyStateFault(RDSClientError):
        def __init__(self, name):
            super().__init__(
                "InvalidDBProxyStateFault",
                f"The DB proxy {name} is in the modifying state and can't be modified.",
            )

    def _backend_modify_db_proxy(self, db_proxy_name, auth=None, require_tls=None, idle_client_timeout=None):
        proxy = self.db_proxies.get(db_proxy_name)
        if proxy is None:
            raise DBProxyNotFoundFault(db_proxy_name)
        if getattr(proxy, "_modifying_describes_left", 0) > 0:
            raise InvalidDBProxyStateFault(db_proxy_name)
        if auth is not None:
            proxy.auth = auth
        if require_tls is not None:
            proxy.require_tls = require_tls
        if idle_client_timeout is not None:
            proxy.idle_client_timeout = idle_client_timeout
        proxy.status = "modifying"
        proxy._modifying_describes_left = MODIFYING_DESCRIBES
        return proxy

    _original_describe = RDSBackend.describe_db_proxies

    def _backend_describe_db_proxies(self, *args, **kwargs):
        proxies = _original_describe(self, *args, **kwargs)
        for proxy in proxies:
            left = getattr(proxy, "_modifying_describes_left", 0)
            if left > 0:
                proxy._modifying_describes_left = left - 1
                if left - 1 == 0:
                    proxy.status = "available"
        return proxies

    def _response_modify_db_proxy(self):
        params = self.params
        proxy = self.backend.modify_db_proxy(
            db_proxy_name=params["DBProxyName"],
            auth=params.get("Auth"),
            require_tls=params.get("RequireTLS"),
            idle_client_timeout=params.get("IdleClientTimeout"),
        )
        return ActionResult({"DBProxy": proxy})

    RDSBackend.modify_db_proxy = _backend_modify_db_proxy
    RDSBackend.describe_db_proxies = _backend_describe_db_proxies
    RDSResponse.modify_db_proxy = _response_modify_db_proxy
