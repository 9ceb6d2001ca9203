from django.contrib.auth import get_user_model

from .conftest import PASSWORD


def test_it_shows_the_signup_form(client, db):
    r = client.get("/signup/")
    assert r.status_code == 200
    assert b'name="password2"' in r.content


def test_it_signs_up_and_logs_in(client, db):
    r = client.post("/signup/", {"username": "newbie", "email": "newbie@example.org",
                                 "password1": PASSWORD, "password2": PASSWORD, "next": "/teams/"})
    assert r.status_code == 302
    assert r.url == "/teams/"
    assert get_user_model().objects.filter(username="newbie").exists()
    r = client.get("/")
    assert b"newbie" in r.content
    assert b"Log out" in r.content


def test_it_refuses_different_passwords(client, db):
    r = client.post("/signup/", {"username": "newbie", "email": "newbie@example.org",
                                 "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert r.status_code == 400
    assert b"You must type the same password each time." in r.content
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_it_refuses_a_taken_name_whatever_its_case(client, eve):
    r = client.post("/signup/", {"username": "EVE", "email": "x@example.org",
                                 "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 400
    assert b"already exists" in r.content
    assert get_user_model().objects.filter(username__iexact="eve").count() == 1


def test_it_shows_the_password_rules(client, db):
    r = client.post("/signup/", {"username": "newbie", "email": "newbie@example.org",
                                 "password1": "123", "password2": "123"})
    assert r.status_code == 400
    assert b"too short" in r.content


def test_it_logs_in_and_out(client, eve):
    r = client.get("/login/")
    assert r.status_code == 200
    r = client.post("/login/", {"login": "eve", "password": PASSWORD})
    assert r.status_code == 302
    assert b"eve" in client.get("/").content
    r = client.post("/logout/")
    assert r.status_code == 302
    assert b"Log in" in client.get("/").content


def test_it_refuses_a_wrong_password(client, eve):
    r = client.post("/login/", {"login": "eve", "password": "wrong"})
    assert r.status_code == 200
    assert b"The username and/or password you specified are not correct." in r.content


def test_it_shows_the_admin_link_to_staff_only(client, eve, organizer):
    client.force_login(eve)
    assert b"/admin/" not in client.get("/").content
    client.force_login(organizer)
    assert b"/admin/" in client.get("/").content


def test_it_refuses_odd_characters_in_user_names(client, db):
    r = client.post("/signup/", {"username": "a/b c", "email": "x@example.org",
                                 "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 400
    assert not get_user_model().objects.exists()
