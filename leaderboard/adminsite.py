"""The organizers' admin site: open to staff and to the hosts of a challenge (models.Host), each of whom sees
and changes only what their challenges' roles allow (adminkit.ChallengeScopedAdmin asks the one permission
rule, leaderboard.challenges.permissions, for every model, object and action)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from leaderboard.challenges.permissions import organizes_anything


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
