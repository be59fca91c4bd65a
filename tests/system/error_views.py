"""URLconf for the error-envelope tests: a few views that fail in each way, plus the real
project URLs (so the /api/ catch-all and health views are there too)."""

from django.contrib.auth.models import Group
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from system.kernel.exceptions import Conflict


class EchoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(min_value=0)


class EchoView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class PrivateView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"ok": True})


class ConflictView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        raise Conflict("Name taken.", code="name_taken", details={"name": "x"})


class BoomView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        Group.objects.create(name="written-before-the-crash")
        raise RuntimeError("secret internal detail")


urlpatterns = [
    path("api/test/echo", EchoView.as_view()),
    path("api/test/private", PrivateView.as_view()),
    path("api/test/conflict", ConflictView.as_view()),
    path("api/test/boom", BoomView.as_view()),
    *project_urlpatterns,
]
