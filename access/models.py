"""No models of its own. The module exists so Django sends this app ``post_migrate`` (it does only for apps
with a models module), after every app before it in INSTALLED_APPS has its permissions: roles sync then."""
