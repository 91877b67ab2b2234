from rest_framework.permissions import DjangoModelPermissions


class ModelViewPermissions(DjangoModelPermissions):
    """Reads need the model's view permission, writes its add/change/delete permission.

    An action that is a workflow rather than a plain write declares what it needs instead:
    `action_permissions = {"cancel": ["releases.deploy_batch"]}` on the view.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is None:
            return super().has_permission(request, view)
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(required))
