"""Admin for applications, batches and releases: new tags at a glance, switches and rollouts
through the services.

Nothing here saves a status. Every button and action calls the same service function as the API
(`releases.services`), from its own view (`views.py`) outside the admin's atomic change form,
because the services open durable transactions and register on-commit Job deletions.

One module per model admin (`applications`, `batches`, `releases`), the custom views in `views`,
what the batch and release pages both show in `display`; importing them registers the admins.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import applications, batches, releases  # noqa: F401  (register the model admins)

admin.site.site_header = _("Release Train")
admin.site.site_title = _("Release Train")
admin.site.index_title = _("Batches, releases, builds and deployments")
admin.site.site_url = None  # the admin is the site; no "View site" link to nowhere
# The app list beside every page took a quarter of a 1280 px screen from the lists; the
# breadcrumbs and the index lead everywhere it did.
admin.site.enable_nav_sidebar = False
admin.site.empty_value_display = "—"  # the dash our own cells show for nothing, everywhere
