"""Print by mail: users by email (a unique address per user, when set), the allow/deny switch, and
guests' jobs with a release code (its HMAC), the languages each printer takes, and which printers
print mail to their own address at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("allowed", sa.Boolean(), nullable=False, server_default=sa.text("true")))
    op.execute("UPDATE users SET email = lower(trim(email))")
    # An address shared by several users stays with the oldest; the others must be given theirs again
    # (a mail from it could not say whose it is).
    op.execute("UPDATE users SET email = '' WHERE email != '' AND id NOT IN "
               "(SELECT MIN(id) FROM users WHERE email != '' GROUP BY email)")
    op.create_index("ix_users_email", "users", ["email"], unique=True, sqlite_where=sa.text("email != ''"),
                    postgresql_where=sa.text("email != ''"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("release_code_hash", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_jobs_release_code_hash", ["release_code_hash"])
    with op.batch_alter_table("printers") as batch:
        batch.add_column(sa.Column("languages", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("direct_mail", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.execute("""UPDATE printers SET languages = '["pdf", "postscript", "pcl", "text"]'""")


def downgrade() -> None:
    with op.batch_alter_table("printers") as batch:
        batch.drop_column("direct_mail")
        batch.drop_column("languages")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_release_code_hash", type_="unique")
        batch.drop_column("release_code_hash")
    op.drop_index("ix_users_email", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("allowed")
