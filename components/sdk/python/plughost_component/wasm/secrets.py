"""The `secret-store` interface over a SecretStore."""

from . import call


def adapter(holder):
    def pairs(values):
        return [(str(k), str(v)) for k, v in dict(values or {}).items()]

    class SecretStore:
        def get(self, key, metadata):
            return pairs(call(holder, lambda c: c.get(key, dict(metadata))))

        def bulk_get(self, metadata):
            secrets = call(holder, lambda c: c.bulk_get(dict(metadata)))
            return [(str(name), pairs(values)) for name, values in dict(secrets or {}).items()]

    return SecretStore
