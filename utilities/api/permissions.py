from django.utils.translation import gettext
from rest_framework.permissions import DjangoModelPermissions


class ModelViewPermissions(DjangoModelPermissions):
    """Reads need the model's view permission, writes its add/change/delete permission.

    An action that is a workflow rather than a plain write declares what it needs instead:
    `action_permissions = {"create": ["releases.add_batch"]}` on the view; `[]` when its
    service checks the permission itself, per application. A refusal names the
    permission that is missing.
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
            if super().has_permission(request, view):
                return True
            model = self._queryset(view).model
            required = self.get_required_permissions(request.method, model)
        user = request.user
        if not (user and user.is_authenticated):
            return False
        missing = [p for p in required if not user.has_perm(p)]
        if missing:
            self.message = gettext("You need the %(permission)s permission.") % {
                "permission": missing[0]
            }
        return not missing
