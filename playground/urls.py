"""URL map: pages, the JSON API and its OpenAPI document, the admin."""

from django.contrib import admin
from django.urls import include, path

from playground.metrics import views as metrics
from playground.ports import api as ports_api
from playground.sandboxes import api, filesapi, nodesapi, pages, terminalsapi
from playground.sessiontemplates import api as templatesapi

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("s/<str:session_id>/", pages.session_page, name="session"),
    path("api/sessions/", api.sessions, name="api-sessions"),
    path("api/sessions/<str:session_id>/", api.session_detail, name="api-session"),
    path("api/sessions/<str:session_id>/extend/", api.session_extend, name="api-session-extend"),
    path("api/sessions/<str:session_id>/instances/", nodesapi.instances, name="api-instances"),
    path("api/sessions/<str:session_id>/instances/<str:name>/", nodesapi.instance_detail, name="api-instance"),
    path("api/sessions/<str:session_id>/instances/<str:name>/terminals/", terminalsapi.terminals, name="api-terminals"),
    path(
        "api/sessions/<str:session_id>/instances/<str:name>/terminals/<int:number>/",
        terminalsapi.terminal_detail,
        name="api-terminal",
    ),
    path("api/sessions/<str:session_id>/instances/<str:name>/files/", filesapi.files, name="api-files"),
    path("api/sessions/<str:session_id>/home.tar", filesapi.home_tar, name="api-home-tar"),
    path(
        "api/sessions/<str:session_id>/instances/<str:name>/ports/<str:port>/", ports_api.port_detail, name="api-port"
    ),
    path(
        "api/sessions/<str:session_id>/instances/<str:name>/ports/<str:port>/open/",
        ports_api.open_port,
        name="api-port-open",
    ),
    path("api/images/", api.images, name="api-images"),
    path("api/templates/", templatesapi.templates, name="api-templates"),
    path("api/schema/", api.schema, name="api-schema"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("playground.labs.urls")),  # labs: pages and API
    path("", include("playground.workshops.urls")),  # workshops: instructors' pages, sign-in, join
    path("admin/", admin.site.urls),
]

handler404 = "playground.sandboxes.api.not_found"
handler500 = "playground.sandboxes.api.server_error"
