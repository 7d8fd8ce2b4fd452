"""Secret stores: `SecretStore`, the `secret-store` interface of `wit/secrets.wit`.
A secret is a dict of values."""

from .component import Component
from .errors import NotSupported


class SecretStore(Component):
    def get(self, key, metadata):
        """-> dict name -> value; raise NotFound(key) when there is no such secret."""
        raise NotSupported("get is not implemented")

    def bulk_get(self, metadata):
        """-> dict secret name -> dict of values."""
        raise NotSupported("bulk_get is not implemented")
