"""The authorization table's rows for the admin (authz_table.table() adds them): staff, and each challenge's hosts
for that challenge's rows (adminkit.ChallengeScopedAdmin)."""

from __future__ import annotations

import dataclasses

from django.contrib import admin

from leaderboard.submissions.models import Submission

from .authz_table import Probe, every, field, get, post

# --- the admin: staff, and each challenge's hosts for that challenge's rows (adminkit.ChallengeScopedAdmin) -------

OUT = "302 302 302 302 302"  # the participants' columns: sent to the admin's login page, whatever they ask
INSIDE = OUT + " 200 200 200 200"  # whoever runs a challenge (the other host runs the draft one) enters
SEEN_BY_HOSTS = OUT + " 404 200 200 200"  # this challenge's hosts and staff; the other host: no such thing
DRAFT_HOSTS = OUT + " 200 404 404 200"
ADMIN_SUB = "/admin/submissions/submission/{public}/"
ADMIN_MISSING_SUB = "/admin/submissions/submission/{missing}/"
ADMIN_SITE: dict[str, list[Probe]] = {
    "admin:index": [get("/admin/", INSIDE)],
    "admin:login": [get("/admin/login/", "200 200 200 200 200 302 302 302 302")],  # it says a participant runs nothing
    "admin:logout": [get("/admin/logout/", OUT + " 405 405 405 405"), post("/admin/logout/", every(302))],
    "admin:password_change": [get("/admin/password_change/", INSIDE)],
    "admin:password_change_done": [get("/admin/password_change/done/", INSIDE)],
    "admin:autocomplete": [get("/admin/autocomplete/", OUT + " 403 403 403 403")],  # it needs a field to look up
    "admin:jsi18n": [get("/admin/jsi18n/", INSIDE)],
    "admin:view_on_site": [get("/admin/r/{admin_team_type}/{team_a}/", OUT + " 404 404 404 404")],  # no page
    "admin:app_list": [get("/admin/accounts/", INSIDE)],
    # An unknown admin address sends participants to the login page too (no model names leak through 404s).
    "admin/(?P<url>.*)$": [get("/admin/nope/", OUT + " 404 404 404 404")],
    # The audit log of a challenge and its CSV: whoever may VIEW the challenge (the draft one is the other host's).
    "admin:audit_log": [get("/admin/audit/{challenge}/", SEEN_BY_HOSTS, twin="/admin/audit/{missing}/"),
                        get("/admin/audit/{draft_challenge}/", DRAFT_HOSTS, twin="/admin/audit/{missing}/")],
    "admin:audit_log_csv": [get("/admin/audit/{challenge}/audit.csv", SEEN_BY_HOSTS,
                                twin="/admin/audit/{missing}/audit.csv"),
                            get("/admin/audit/{draft_challenge}/audit.csv", DRAFT_HOSTS,
                                twin="/admin/audit/{missing}/audit.csv")],
    # A submission's files, streamed from private storage (the zip's entries are unpacked by the leak check):
    # its challenge's hosts, the viewer too; to the other host it does not exist.
    "admin:submissions_submission_download_upload": [
        get("/admin/submissions/submission/{other_private}/download/upload.zip", SEEN_BY_HOSTS,
            twin=ADMIN_MISSING_SUB + "download/upload.zip")],
    "admin:submissions_submission_download_details": [
        get(ADMIN_SUB + "download/per-expression.csv", SEEN_BY_HOSTS,
            twin=ADMIN_MISSING_SUB + "download/per-expression.csv")],
    # The moderation buttons: a POST with a reason, for who may MODERATE (the viewer is refused).
    "admin:submissions_submission_moderate": [
        post(ADMIN_SUB + "moderate/hide/", OUT + " 404 403 302+ 302+", data={"reason": "Cell reason"},
             state=field(Submission, "public", "hidden"), twin=ADMIN_MISSING_SUB + "moderate/hide/"),
        post(ADMIN_SUB + "moderate/flag/", OUT + " 404 403 302+ 302+", data={"reason": "Cell reason"},
             state=field(Submission, "public", "flagged"), twin=ADMIN_MISSING_SUB + "moderate/flag/"),
        get(ADMIN_SUB + "moderate/hide/", OUT + " 404 405 405 405", twin=ADMIN_MISSING_SUB + "moderate/hide/")],
}


@dataclasses.dataclass(frozen=True)
class AdminRule:
    """What the hosts' columns (other_host, host_viewer, host; staff get 200 everywhere) get from one model's
    admin. The world's objects are all this challenge's: to the other host they do not exist (sent to the index)."""

    add: str  # the add form, staff included: who files new rows (CONFIGURE) under a challenge of theirs
    delete: bool  # whether this challenge's host may delete (confirmation page) or is refused (403)
    # delete_selected POSTed to the list: the confirmation page for who may delete; for the others the list
    # again (200), or a redirect to it (302) where they have other actions (the action is not one of theirs)
    action: str = "200 200 200"
    staff_only: bool = False


SCOPED = AdminRule(add="200 403 200 200", delete=True)
ADMIN_RULES = {
    "challenges_challenge": AdminRule(add="403 403 403 200", delete=False),  # staff make challenges and name hosts
    "challenges_phase": SCOPED,
    "challenges_groundtruthbundle": SCOPED,
    "baselines_reportedresult": SCOPED,
    # Added by services only: submissions by submission_create, teams by team_create, runs by run_baseline.
    # A host hides a submission rather than deleting it; a team goes with its submissions (staff only).
    "submissions_submission": AdminRule(add="403 403 403 403", delete=False, action="302 200 302"),
    # A host who may MODERATE disqualifies a team (the other host: in their own challenge); lifted, never deleted.
    "submissions_disqualification": AdminRule(add="200 403 200 200", delete=False, action="302 200 302"),
    "accounts_team": AdminRule(add="403 403 403 403", delete=False),
    "baselines_baselinerun": AdminRule(add="403 403 403 403", delete=True),
    # The site's accounts and tokens: staff only.
    "auth_user": AdminRule(add="403 403 403 200", delete=False, staff_only=True),
    "auth_group": AdminRule(add="403 403 403 200", delete=False, staff_only=True),
    "authtoken_tokenproxy": AdminRule(add="403 403 403 200", delete=False, staff_only=True),
    "account_emailaddress": AdminRule(add="403 403 403 200", delete=False, staff_only=True),  # allauth's
    # Announcing is moderation: the hosts who moderate write, send and (while unsent) delete them.
    "notifications_announcement": SCOPED,
}


def admin_rows() -> dict[str, list[Probe]]:
    rows: dict[str, list[Probe]] = {}
    for model in admin.site._registry:
        name = f"{model._meta.app_label}_{model._meta.model_name}"
        rule = ADMIN_RULES[name]  # a newly registered model admin needs its rule written here
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        obj = base + "{admin[" + name + "]}/"
        exists = lambda world, user, model=model, name=name: model._default_manager.filter(  # noqa: E731
            pk=world.ids["admin"][name]).exists()
        if rule.staff_only:
            listing = changing = deleting = deleted = OUT + " 403 403 403 200"
        else:
            listing = INSIDE
            changing = OUT + " 302 200 200 200"  # the other host: no such row (sent to the index)
            # the other host: no such row (sent to the index) where it may delete rows of its own, else refused
            deleting = OUT + (" 302 403 200 200" if rule.delete else " 403 403 403 200")
            deleted = f"{OUT} {rule.action} 200"
        rows[f"admin:{name}_changelist"] = [
            get(base, listing),
            # An action is a POST to the list; delete_selected only asks for confirmation first.
            post(base, deleted, data=lambda w, p, name=name: {"action": "delete_selected",
                                                               "_selected_action": [w.ids["admin"][name]]},
                 state=exists)]
        rows[f"admin:{name}_add"] = [get(base + "add/", f"{OUT} {rule.add}")]
        rows[f"admin:{name}_change"] = [get(obj + "change/", changing)]
        rows[f"admin:{name}_history"] = [get(obj + "history/", changing)]
        rows[f"admin:{name}_delete"] = [get(obj + "delete/", deleting)]
        rows[f"admin/{model._meta.app_label}/{model._meta.model_name}/<path:object_id>/"] = [
            get(obj, every(302))]  # to the change page
    rows["admin:auth_user_password_change"] = [get("/admin/auth/user/{owner_pk}/password/", OUT + " 403 403 403 200")]
    return rows


