"""The labels that tie every object of an Orca application to it."""

APP = "orca.dev/app"  # the application id, on every object Orca creates
ROLE = "orca.dev/role"  # what the object is to the application: owner, executor, driver, ...


def selector(app_id: str) -> str:
    """The label selector of every object of application `app_id`."""
    return f"{APP}={app_id}"
