"""``oneloop users``, ``oneloop roles`` and ``oneloop apikeys``: people, what they may do, and
the keys machines use. Passwords are read from stdin, never from the command line (where
the shell's history and ``ps`` would show them)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, fail, print_json, reported_errors
from oneloop.governance import signin, users
from oneloop.governance.schemas import ApiKeyIn, MembershipIn, RoleIn, UserIn, UserPatch

users_app = typer.Typer(help="Users and their roles per unit (用户与角色).", no_args_is_help=True)
roles_app = typer.Typer(help="Roles: the built-in matrix and custom roles.", no_args_is_help=True)
apikeys_app = typer.Typer(
    help="API keys for machines: hashed, scoped, expiring.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _password() -> str:
    """The first line of stdin; a terminal is asked twice, without echo."""
    if sys.stdin.isatty():
        first = typer.prompt("password", hide_input=True)
        if typer.prompt("again", hide_input=True) != first:
            fail("the two passwords differ")
        return str(first)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("give the password on stdin, e.g. printf '%s\\n' \"$PW\" | oneloop users create …")
    return line


@users_app.command(
    "create",
    epilog=(
        "Example: printf '%s\\n' 'correct horse battery' | "
        "oneloop users create li.lei@galaxy.example.com --bu appliances --role marketer "
        "--name 李雷"
    ),
)
def create(
    email: Annotated[str, typer.Argument(help="the sign-in email")],
    bu: Annotated[str, typer.Option("--bu", help="code of the unit the role is held in")],
    role: Annotated[str, typer.Option("--role", help="e.g. marketer, bu_admin, sales_rep")],
    name: Annotated[
        str | None, typer.Option("--name", help="display name (default: email)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user with a role in one unit; the password is read from stdin."""
    password = _password()
    with reported_errors(), cli_session() as (session, ctx):
        data = UserIn(email=email, display_name=name or email, password=password, bu=bu, role=role)
        user = users.create_user(session, ctx, data)
    if as_json:
        print_json(user)
    else:
        console.print(f"created user [bold]{user.email}[/] ({user.id}): {role} in {bu}")


@users_app.command("list", epilog="Example: oneloop users list --json")
def list_(as_json: JsonOpt = False) -> None:
    """List users with their roles per unit."""
    with reported_errors(), cli_session() as (session, ctx):
        found = users.list_users(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("email", "name", "roles", "active", "last login", "id")
    for u in found:
        roles = ", ".join(f"{m.role}@{m.bu_code}" for m in u.memberships)
        last = u.last_login_at.isoformat() if u.last_login_at else ""
        table.add_row(u.email, u.display_name, roles, "yes" if u.is_active else "no", last, u.id)
    console.print(table)


@users_app.command(
    "grant",
    epilog="Example: oneloop users grant li.lei@galaxy.example.com --bu service --role analyst",
)
def grant(
    email: Annotated[str, typer.Argument(help="the user's email")],
    bu: Annotated[str, typer.Option("--bu", help="the unit's code")],
    role: Annotated[str, typer.Option("--role", help="the role there")],
) -> None:
    """Give a user a role in a unit (replacing the one they held there)."""
    with reported_errors(), cli_session() as (session, ctx):
        user = users.find_user(session, ctx, email)
        users.grant(session, ctx, user.id, bu, MembershipIn(role=role).role)
    console.print(f"{email}: {role} in {bu}")


@users_app.command(
    "revoke", epilog="Example: oneloop users revoke li.lei@galaxy.example.com --bu service"
)
def revoke(
    email: Annotated[str, typer.Argument(help="the user's email")],
    bu: Annotated[str, typer.Option("--bu", help="the unit's code")],
) -> None:
    """Take away a user's role in a unit; their sessions there end."""
    with reported_errors(), cli_session() as (session, ctx):
        user = users.find_user(session, ctx, email)
        users.revoke(session, ctx, user.id, bu)
    console.print(f"{email}: no role in {bu} any more")


@users_app.command("unlock", epilog="Example: oneloop users unlock li.lei@galaxy.example.com")
def unlock(email: Annotated[str, typer.Argument(help="the user's email")]) -> None:
    """End a lock-out after too many failed sign-ins."""
    with reported_errors(), cli_session() as (session, ctx):
        signin.unlock(session, ctx, users.find_user(session, ctx, email).id)
    console.print(f"{email}: unlocked")


@users_app.command(
    "set",
    epilog=(
        "Examples: oneloop users set li.lei@galaxy.example.com --inactive   "
        "printf '%s\\n' 'a new long password' | oneloop users set li.lei@galaxy.example.com "
        "--password"
    ),
)
def set_(
    email: Annotated[str, typer.Argument(help="the user's email")],
    name: Annotated[str | None, typer.Option("--name", help="new display name")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="(de)activate; ends sessions")
    ] = None,
    password: Annotated[
        bool, typer.Option("--password", help="read a new password from stdin")
    ] = False,
) -> None:
    """Rename, (de)activate, or set a new password (which ends the user's sessions)."""
    new_password = _password() if password else None
    with reported_errors(), cli_session() as (session, ctx):
        user = users.find_user(session, ctx, email)
        patch = UserPatch(display_name=name, is_active=active, password=new_password)
        users.update_user(session, ctx, user.id, patch)
    console.print(f"{email}: updated")


@roles_app.command("list", epilog="Example: oneloop roles list --json")
def roles_list(as_json: JsonOpt = False) -> None:
    """The role matrix: each role and its permissions."""
    with reported_errors(), cli_session() as (session, ctx):
        found = users.list_roles(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("code", "名称", "name", "kind", "permissions")
    for r in found:
        kind = ("built-in" if r.builtin else "custom") + (", group only" if r.group_only else "")
        table.add_row(r.code, r.name_zh, r.name_en, kind, " ".join(r.permissions))
    console.print(table)


@roles_app.command("permissions", epilog="Example: oneloop roles permissions")
def roles_permissions(as_json: JsonOpt = False) -> None:
    """Every permission a role can hold."""
    found = users.list_permissions()
    if as_json:
        print_json(found)
        return
    table = Table("permission", "说明", "meaning")
    for p in found:
        table.add_row(p.name, p.description_zh, p.description_en)
    console.print(table)


@roles_app.command(
    "create",
    epilog=(
        "Example: oneloop roles create campaign_viewer --name 活动查看 --name-en "
        "'Campaign viewer' --permission profiles.read --permission segments.read"
    ),
)
def roles_create(
    code: Annotated[str, typer.Argument(help="lower-case letters, digits, underscores")],
    name: Annotated[str, typer.Option("--name", help="display name (Chinese)")],
    permission: Annotated[list[str], typer.Option("--permission", help="repeat for each")],
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name")] = None,
) -> None:
    """Create a custom role from permissions (see `oneloop roles permissions`)."""
    with reported_errors(), cli_session() as (session, ctx):
        data = RoleIn(code=code, name_zh=name, name_en=name_en or name, permissions=permission)
        users.create_role(session, ctx, data)
    console.print(f"created role [bold]{code}[/]")


@roles_app.command("delete", epilog="Example: oneloop roles delete campaign_viewer")
def roles_delete(code: Annotated[str, typer.Argument(help="the custom role's code")]) -> None:
    """Delete a custom role that nobody holds."""
    with reported_errors(), cli_session() as (session, ctx):
        users.delete_role(session, ctx, code)
    console.print(f"deleted role {code}")


@apikeys_app.command(
    "create",
    epilog=(
        "Example: oneloop apikeys create --user li.lei@galaxy.example.com --name 'BI nightly' "
        "--scope profiles.read --scope segments.read --days 90 --json"
    ),
)
def apikeys_create(
    user: Annotated[str, typer.Option("--user", help="email of the user the key acts as")],
    scope: Annotated[list[str], typer.Option("--scope", help="a permission; repeat for each")],
    name: Annotated[str, typer.Option("--name", help="what the key is for")] = "cli",
    bu: Annotated[
        str | None, typer.Option("--bu", help="unit the key acts in (default: the user's first)")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="valid this many days")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Make an API key; its token is printed once and only a hash is kept."""
    with reported_errors(), cli_session() as (session, ctx):
        data = ApiKeyIn(name=name, scopes=scope, expires_in_days=days, user=user, bu=bu)
        made = signin.create_api_key(session, ctx, data)
    if as_json:
        print_json(made)
    else:
        console.print(f"API key {made.id}, expires {made.expires_at:%Y-%m-%d}; shown once:")
        typer.echo(made.token)


@apikeys_app.command("list", epilog="Example: oneloop apikeys list --json")
def apikeys_list(as_json: JsonOpt = False) -> None:
    """Every API key, newest first (never their tokens)."""
    with reported_errors(), cli_session() as (session, ctx):
        found = signin.list_api_keys(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("id", "name", "user", "unit", "scopes", "expires", "last used", "revoked")
    for k in found:
        used = k.last_used_at.isoformat() if k.last_used_at else ""
        revoked = k.revoked_at.isoformat() if k.revoked_at else ""
        table.add_row(
            k.id,
            k.name,
            k.user_id,
            k.bu_id,
            " ".join(k.scopes),
            f"{k.expires_at:%Y-%m-%d}",
            used,
            revoked,
        )
    console.print(table)


@apikeys_app.command("revoke", epilog="Example: oneloop apikeys revoke 01J…")
def apikeys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id")]) -> None:
    """Revoke an API key at once."""
    with reported_errors(), cli_session() as (session, ctx):
        signin.revoke_api_key(session, ctx, key_id)
    console.print(f"revoked {key_id}")
