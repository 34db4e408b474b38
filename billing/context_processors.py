def folio(request):
    return {
        "current_company": getattr(request, "company", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
    }
