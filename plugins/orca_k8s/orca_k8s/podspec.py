"""What every pod of an application shares: image, pull settings, service account, volumes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from orca_core.errors import ConfigError, ConfigTypeError
from orca_k8s.labels import APP, ROLE


@dataclass(frozen=True)
class PodSpec:
    image: str
    pull_policy: str | None = None
    pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    volumes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict, mode: str) -> PodSpec:
        image = options.get("container_image")
        if not image:
            raise ConfigError(
                f'cluster_mode="{mode}" needs container_image: the image of the pods, one with Java, Spark and '
                "the Python packages your program uses (e.g. container_image='apache/spark-py:v4.0.0')"
            )
        secrets = options.get("image_pull_secrets") or ()
        if isinstance(secrets, str):
            secrets = [s.strip() for s in secrets.split(",") if s.strip()]
        if not all(isinstance(s, str) for s in secrets):
            raise ConfigTypeError(f"image_pull_secrets must be secret names, got {secrets!r}")
        volumes = options.get("volumes") or {}
        for claim, path in volumes.items():
            if not isinstance(claim, str) or not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError(
                    f"volumes must map PersistentVolumeClaim names to absolute mount paths, got {claim!r}: "
                    f"{path!r}; write volumes={{'my-claim': '/data'}}"
                )
        return cls(image, options.get("image_pull_policy"), tuple(secrets), options.get("service_account"),
                   dict(volumes))

    def spark_conf(self) -> dict[str, str]:
        conf = {"spark.kubernetes.container.image": self.image}
        if self.pull_policy:
            conf["spark.kubernetes.container.image.pullPolicy"] = self.pull_policy
        if self.pull_secrets:
            conf["spark.kubernetes.container.image.pullSecrets"] = ",".join(self.pull_secrets)
        if self.service_account:
            conf["spark.kubernetes.authenticate.driver.serviceAccountName"] = self.service_account
            conf["spark.kubernetes.authenticate.executor.serviceAccountName"] = self.service_account
        for role in ("driver", "executor"):
            for claim, path in self.volumes.items():
                prefix = f"spark.kubernetes.{role}.volumes.persistentVolumeClaim.{claim}"
                conf[f"{prefix}.options.claimName"] = claim
                conf[f"{prefix}.mount.path"] = path
        return conf


def template(app_id: str, role: str, owner_ref: dict | None) -> dict:
    """A Spark pod template carrying Orca's labels and, when given, the ownerReference to the owner."""
    meta: dict = {"labels": {APP: app_id, ROLE: role}}
    if owner_ref:
        meta["ownerReferences"] = [owner_ref]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}}


def write_template(path: str, body: dict) -> None:
    """Write a pod template (JSON, which Spark reads as YAML) private to the user, in a folder made for it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
