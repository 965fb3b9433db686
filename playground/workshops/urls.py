"""URLs of the workshops: the instructors' sign-in and pages, and the learners' join."""

from django.contrib.auth import views as auth_views
from django.urls import path

import playground.workshops.helpqueue as helpqueue
from playground.workshops import actions, export, recordingviews, views, watch

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(template_name="workshops/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("workshops/", views.workshop_list, name="workshops"),
    path("workshops/<int:workshop_id>/", views.dashboard_page, name="workshop-dashboard"),
    path("workshops/<int:workshop_id>/help/<int:request_pk>/resolve/", helpqueue.resolve, name="help-resolve"),
    path("api/sessions/<str:session_id>/hand/", helpqueue.hand, name="api-session-hand"),
    path("workshops/<int:workshop_id>/projector/", views.projector, name="workshop-projector"),
    path("workshops/<int:workshop_id>/end/", views.end_workshop, name="workshop-end"),
    path("workshops/<int:workshop_id>/progress.csv", export.progress_download, name="workshop-progress-csv"),
    path("workshops/<int:workshop_id>/extend/", actions.extend_all, name="workshop-extend"),
    path("workshops/<int:workshop_id>/broadcast/", actions.broadcast, name="workshop-broadcast"),
    path("workshops/<int:workshop_id>/step/", actions.push_step, name="workshop-step"),
    path(
        "workshops/<int:workshop_id>/learners/<int:learner_pk>/extend/", actions.extend_learner, name="learner-extend"
    ),
    path("workshops/<int:workshop_id>/learners/<int:learner_pk>/end/", actions.end_learner, name="learner-end"),
    path("workshops/<int:workshop_id>/learners/<int:learner_pk>/reset/", actions.reset_learner, name="learner-reset"),
    path("workshops/<int:workshop_id>/learners/<int:learner_pk>/watch/", watch.watch_page, name="learner-watch"),
    path(
        "workshops/<int:workshop_id>/learners/<int:learner_pk>/recordings/",
        recordingviews.learner_recordings,
        name="learner-recordings",
    ),
    path(
        "workshops/<int:workshop_id>/learners/<int:learner_pk>/recordings/<str:name>",
        recordingviews.learner_recording,
        name="learner-recording",
    ),
    path("s/<str:session_id>/recordings/", recordingviews.own_recordings, name="own-recordings"),
    path("s/<str:session_id>/recordings/<str:name>", recordingviews.own_recording, name="own-recording"),
    path("join", views.join, name="join"),
    path("join/<str:code>", views.join, name="join-code"),
]
