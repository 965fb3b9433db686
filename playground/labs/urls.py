"""URLs of the labs: the catalogue and lab pages, and the labs API."""

from django.urls import path

from playground.labs import api, pages

urlpatterns = [
    path("labs/", pages.catalogue, name="labs"),
    path("labs/<slug:slug>/", pages.lab_page, name="lab"),
    path("api/labs/", api.catalogue, name="api-labs"),
    path("api/labs/<str:slug>/", api.detail, name="api-lab"),
    path("api/sessions/<str:session_id>/lab/steps/<int:number>/open/", api.step_open, name="api-lab-open"),
    path("api/sessions/<str:session_id>/lab/steps/<int:number>/check/", api.step_check, name="api-lab-check"),
    path("api/sessions/<str:session_id>/lab/skip/", api.skip, name="api-lab-skip"),
]
