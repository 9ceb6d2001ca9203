"""The notification settings page and the unsubscribe link every mail carries."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from leaderboard.errors import ApplicationError
from leaderboard.webkit import render_error

from . import selectors, services
from .forms import PreferencesForm

TOPIC_WORDS = {"submissions": "mails about your submissions' scores and failures",
               "announcements": "announcements from challenge organizers"}


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    prefs = selectors.preferences_for(user=request.user)
    form = PreferencesForm(request.POST or None, initial={"submission_mails": prefs.submission_mails,
                                                          "announcement_mails": prefs.announcement_mails})
    if request.method == "POST" and form.is_valid():
        services.preferences_set(user=request.user, **form.cleaned_data)
        messages.success(request, "Your e-mail choices are saved.")
        return redirect("notification_settings")
    return render(request, "notifications/settings.html", {"form": form})


# A mail program's one-click unsubscribe (RFC 8058) POSTs here without a CSRF token or a session: the
# signed token is the credential. A GET only asks (link checkers and previews open links).
@never_cache
@csrf_exempt
def notification_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    target = selectors.unsubscribe_target(token=token)
    if target is None:
        return render_error(request, "This unsubscribe link is not valid (it may be cut short in your mail "
                            "program). Sign in and choose on the e-mail notifications page instead.", status=404)
    _, topic = target
    done = False
    if request.method == "POST":
        try:
            services.unsubscribe(token=token)
        except ApplicationError as exc:
            return render_error(request, exc.message, status=exc.status)
        done = True
    # The page names no account: whoever holds a forwarded mail learns nothing of whose it was.
    return render(request, "notifications/unsubscribe.html", {"done": done, "topic_words": TOPIC_WORDS[topic]})
