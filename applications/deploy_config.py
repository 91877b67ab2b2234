"""An application's deploy config: what its Jobs run, per environment, and who may see it."""

import re
from fnmatch import fnmatchcase

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .choices import Environment

# A Kubernetes namespace (a DNS-1123 label), and what Kubernetes accepts as an env var name.
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def validate_deploy_config(value) -> None:
    """`{"pre"|"prod": {"namespace", "image", "command", "env"}}`, checked where it is written
    (the executors check it again at launch: a config that can never work fails only its own
    deployment)."""
    if not isinstance(value, dict):
        raise ValidationError(_("The deploy config must be an object keyed by environment."))
    for environment, config in value.items():
        if environment not in Environment.values or not isinstance(config, dict):
            raise ValidationError(
                _("Keys must be pre or prod, each holding an object; got %(key)r."),
                params={"key": environment},
            )
        namespace = config.get("namespace")
        if namespace is not None and not (
            isinstance(namespace, str) and DNS_1123_LABEL.match(namespace)
        ):
            raise ValidationError(
                _("%(env)s.namespace must be a Kubernetes namespace (lowercase, digits, -)."),
                params={"env": environment},
            )
        if namespace is not None and not namespace_allowed(namespace):
            raise ValidationError(
                _("%(env)s.namespace %(value)r is not allowed here (DEPLOY_ALLOWED_NAMESPACES)."),
                params={"env": environment, "value": namespace},
            )
        image = config.get("image")
        if image is not None and not isinstance(image, str):
            raise ValidationError(_("%(env)s.image must be a string."), params={"env": environment})
        if image and not image_allowed(image, default=settings.DEPLOY_JOB_IMAGE):
            raise ValidationError(
                _("%(env)s.image %(value)r is not allowed here (DEPLOY_ALLOWED_IMAGES)."),
                params={"env": environment, "value": image},
            )
        command = config.get("command")
        if command is not None and not (
            isinstance(command, list) and all(isinstance(c, str) for c in command)
        ):
            raise ValidationError(
                _("%(env)s.command must be a list of strings."), params={"env": environment}
            )
        env = config.get("env")
        if env is not None and not (
            isinstance(env, dict)
            and all(
                isinstance(k, str) and ENV_NAME.match(k) and isinstance(v, str)
                for k, v in env.items()
            )
        ):
            raise ValidationError(
                _("%(env)s.env must map variable names to strings."), params={"env": environment}
            )


def namespace_allowed(namespace: str) -> bool:
    """An environment's own namespace, or one matching DEPLOY_ALLOWED_NAMESPACES (fnmatch)."""
    return namespace in settings.DEPLOY_NAMESPACES.values() or any(
        fnmatchcase(namespace, pattern) for pattern in settings.DEPLOY_ALLOWED_NAMESPACES
    )


def image_allowed(image: str, *, default: str) -> bool:
    """The default Job image, or one matching DEPLOY_ALLOWED_IMAGES (fnmatch). Saving checks
    the image as written, a launch the image it renders (`default` rendered likewise)."""
    return (bool(default) and image == default) or any(
        fnmatchcase(image, pattern) for pattern in settings.DEPLOY_ALLOWED_IMAGES
    )


# Who may change an application's deploy config, and so see the values of its env variables.
DEPLOY_CONFIG_PERMISSION = "applications.change_deploy_config"


def env_values_hidden(config):
    """One environment's config (a deployment's `config`) with its env values replaced by null:
    the names show what is set, the values (passwords, tokens) only to DEPLOY_CONFIG_PERMISSION."""
    if not isinstance(config, dict) or not isinstance(config.get("env"), dict):
        return config
    return {**config, "env": dict.fromkeys(config["env"])}


def deploy_config_env_hidden(deploy_config):
    """An application's `deploy_config` (keyed by environment), env values hidden."""
    if not isinstance(deploy_config, dict):
        return deploy_config
    return {environment: env_values_hidden(c) for environment, c in deploy_config.items()}
