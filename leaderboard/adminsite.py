"""The organizers' admin site: open to staff and to the hosts of a challenge (models.Host), each of whom sees
and changes only what their challenges' roles allow (adminkit.ChallengeScopedAdmin asks the one permission
rule, leaderboard.challenges.permissions, for every model, object and action)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import path

from leaderboard.challenges.permissions import Can, challenges_where, organizes_anything

# The index, grouped by what an organizer does rather than by Django app: (section, [app_label.model_name]).
# A registered model missing here is listed under "Other".
SECTIONS: list[tuple[str, list[str]]] = [
    ("Run a challenge", ["challenges.challenge", "challenges.phase", "challenges.groundtruthbundle"]),
    ("Submissions and moderation", ["submissions.submission", "submissions.disqualification"]),
    ("Teams", ["accounts.team"]),
    ("Baselines", ["baselines.baselinerun", "baselines.reportedresult"]),
    ("Site accounts (staff)", ["auth.user", "auth.group", "authtoken.tokenproxy"]),
]


class OrganizerLoginForm(AdminAuthenticationForm):
    """The admin's login form, letting in whoever runs a challenge (the stock one wants is_staff)."""

    def confirm_login_allowed(self, user) -> None:  # type: ignore[no-untyped-def]
        if not user.is_active or not organizes_anything(user):
            raise ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                  params={"username": self.username_field.verbose_name})


class OrganizerAdminSite(admin.AdminSite):
    site_header = "EgoMask leaderboard · organizers"
    site_title = "EgoMask organizers"
    index_title = "Challenges you run"
    login_form = OrganizerLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        return organizes_anything(request.user)

    def get_urls(self) -> list:
        from leaderboard import audit_admin  # its models are loaded once the site's URLs are asked for

        return [
            path("audit/<int:challenge_id>/", self.admin_view(partial(audit_admin.audit_page, self)),
                 name="audit_log"),
            path("audit/<int:challenge_id>/audit.csv", self.admin_view(partial(audit_admin.audit_csv, self)),
                 name="audit_log_csv"),
            *super().get_urls(),
        ]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # an app's own page: as Django lists it
            return apps
        models = {f"{app['app_label']}.{m['object_name'].lower()}": (app, m) for app in apps for m in app["models"]}
        sections = []
        for name, labels in [*SECTIONS, ("Other", [label for label in models
                                                    if not any(label in ls for _, ls in SECTIONS)])]:
            found = [models[label] for label in labels if label in models]
            if found:
                sections.append({"name": name, "app_label": found[0][0]["app_label"],
                                 "app_url": found[0][0]["app_url"], "has_module_perms": True,
                                 "models": [m for _, m in found]})
        return sections

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        # The audit logs the user may read, linked from the index.
        audit = list(challenges_where(request.user, Can.VIEW).order_by("title").values("pk", "title"))
        return super().index(request, {**(extra_context or {}), "audit_challenges": audit})
