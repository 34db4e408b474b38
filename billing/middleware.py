"""
A page for an address that only takes a form's submission when it is opened directly (a
bookmark, Enter in the address bar after a refused form): Django's 405 has an empty body,
which browsers show as a broken page.
"""

from django.shortcuts import render

API_PREFIX = "/api/"


class MethodNotAllowedPageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or request.method != "GET" or response.content \
                or request.path.startswith(API_PREFIX):
            return response
        # The page the form was on: /invoices/7/payments/ was posted from /invoices/7/.
        back = request.path.rstrip("/").rpartition("/")[0] + "/"
        page = render(request, "405.html", {"back": back}, status=405)
        page["Allow"] = response["Allow"]
        return page
