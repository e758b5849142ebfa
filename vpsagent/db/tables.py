"""SQLAlchemy Core tables for the hot path. GENERATED from db/models.py — do not edit.

Regenerate with `python scripts/gentables.py`; a test fails when this file is stale.
"""

# ruff: noqa: E501
from __future__ import annotations

import sqlalchemy as sa

from vpsagent.db.types import CoreTable, UTCDateTime

metadata = sa.MetaData()

api_tokens = sa.Table(
    'api_tokens',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('prefix', sa.String(16), nullable=False),
    sa.Column('token_hash', sa.String(128), nullable=False),
    sa.Column('role', sa.String(20), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=True),
    sa.Column('last_used_at', UTCDateTime(), nullable=True),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
)

command_history = sa.Table(
    'command_history',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(20), nullable=False),
    sa.Column('source', sa.String(20), nullable=False),
    sa.Column('server', sa.String(200), nullable=False),
    sa.Column('command', sa.String(), nullable=False),
    sa.Column('sudo', sa.Boolean(), nullable=False),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(320), nullable=True),
    sa.Column('token_name', sa.String(200), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('hostname', sa.String(255), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('test_run_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.String(20), nullable=True),
    sa.Column('decision_reason', sa.String(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('stdout_bytes', sa.Integer(), nullable=True),
    sa.Column('stderr_bytes', sa.Integer(), nullable=True),
    sa.Column('stdout_excerpt', sa.String(), nullable=True),
    sa.Column('stderr_excerpt', sa.String(), nullable=True),
    sa.Column('stdout_sha256', sa.String(64), nullable=True),
    sa.Column('stderr_sha256', sa.String(64), nullable=True),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('prev_hash', sa.String(64), nullable=True),
    sa.Column('row_hash', sa.String(64), nullable=True),
    sa.Column('done_hash', sa.String(64), nullable=True),
    sa.Column('hash_version', sa.String(8), nullable=True),
)

conversations = sa.Table(
    'conversations',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('mode', sa.String(20), nullable=False),
    sa.Column('title', sa.String(500), nullable=False),
    sa.Column('model', sa.String(100), nullable=False),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(30), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
)

db_settings = sa.Table(
    'db_settings',
    metadata,
    sa.Column('key', sa.String(100), primary_key=True),
    sa.Column('value', sa.String(1000), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(320), nullable=True),
)

deploy_locks = sa.Table(
    'deploy_locks',
    metadata,
    sa.Column('app', sa.String(100), primary_key=True),
    sa.Column('server', sa.String(200), primary_key=True),
    sa.Column('holder', sa.String(500), nullable=False),
    sa.Column('path', sa.String(1024), nullable=False),
    sa.Column('deploy_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
)

deploy_secrets = sa.Table(
    'deploy_secrets',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('app', sa.String(100), nullable=False),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('value_enc', sa.String(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
)

deploys = sa.Table(
    'deploys',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('kind', sa.String(20), nullable=False),
    sa.Column('app', sa.String(100), nullable=False),
    sa.Column('repo', sa.String(300), nullable=False),
    sa.Column('ref', sa.String(300), nullable=False),
    sa.Column('sha', sa.String(64), nullable=True),
    sa.Column('environment', sa.String(100), nullable=False),
    sa.Column('status', sa.String(20), nullable=False),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('github_deployment_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(1024), nullable=False),
    sa.Column('config', sa.String(), nullable=True),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(320), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
)

github_integrations = sa.Table(
    'github_integrations',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('repo', sa.String(300), nullable=False),
    sa.Column('api_url', sa.String(500), nullable=True),
    sa.Column('token_enc', sa.String(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
)

messages = sa.Table(
    'messages',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(20), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
)

otp_codes = sa.Table(
    'otp_codes',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('email', sa.String(320), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('attempt', sa.String(64), nullable=False),
    sa.Column('code_hash', sa.String(128), nullable=False),
    sa.Column('state', sa.String(20), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', UTCDateTime(), nullable=True),
)

plan_applications = sa.Table(
    'plan_applications',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('plan_hash', sa.String(64), nullable=False),
    sa.Column('path', sa.String(2048), nullable=False),
    sa.Column('status', sa.String(20), nullable=False),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(320), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
)

plans = sa.Table(
    'plans',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('hash', sa.String(64), nullable=False),
    sa.Column('path', sa.String(2048), nullable=False),
    sa.Column('request', sa.String(2000), nullable=False),
    sa.Column('model', sa.String(100), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('content', sa.String(), nullable=False),
    sa.Column('origin', sa.String(20), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_email', sa.String(320), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('seen_at', UTCDateTime(), nullable=False),
)

server_locks = sa.Table(
    'server_locks',
    metadata,
    sa.Column('server', sa.String(200), primary_key=True),
    sa.Column('holder', sa.String(500), nullable=False),
    sa.Column('hostname', sa.String(255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
)

servers = sa.Table(
    'servers',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('host', sa.String(255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(100), nullable=True),
    sa.Column('auth_kind', sa.String(20), nullable=False),
    sa.Column('private_key_enc', sa.String(), nullable=True),
    sa.Column('key_passphrase_enc', sa.String(), nullable=True),
    sa.Column('password_enc', sa.String(), nullable=True),
    sa.Column('sudo_password_enc', sa.String(), nullable=True),
    sa.Column('key_source', sa.String(1024), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('jump', sa.String(200), nullable=True),
    sa.Column('host_key_type', sa.String(64), nullable=True),
    sa.Column('host_key', sa.String(), nullable=True),
    sa.Column('host_key_fingerprint', sa.String(128), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
)

sessions = sa.Table(
    'sessions',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(128), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('last_used_at', UTCDateTime(), nullable=True),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
)

support_reports = sa.Table(
    'support_reports',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('question', sa.String(2000), nullable=False),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('since_s', sa.Integer(), nullable=False),
    sa.Column('collectors', sa.JSON(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
)

test_runs = sa.Table(
    'test_runs',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('plan_name', sa.String(500), nullable=False),
    sa.Column('plan_path', sa.String(2048), nullable=True),
    sa.Column('status', sa.String(20), nullable=False),
    sa.Column('servers', sa.JSON(), nullable=False),
    sa.Column('passed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('os_user', sa.String(100), nullable=True),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
)

test_steps = sa.Table(
    'test_steps',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('server', sa.String(200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(500), nullable=False),
    sa.Column('kind', sa.String(20), nullable=False),
    sa.Column('status', sa.String(20), nullable=False),
    sa.Column('command', sa.String(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('expected', sa.String(), nullable=True),
    sa.Column('actual', sa.String(), nullable=True),
    sa.Column('message', sa.String(), nullable=True),
    sa.Column('stdout_excerpt', sa.String(), nullable=True),
    sa.Column('stderr_excerpt', sa.String(), nullable=True),
    sa.Column('explanation', sa.String(), nullable=True),
    sa.Column('started_at', UTCDateTime(), nullable=False),
)

users = sa.Table(
    'users',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('email', sa.String(320), nullable=False),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('role', sa.String(20), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('last_login_at', UTCDateTime(), nullable=True),
)

vault = sa.Table(
    'vault',
    metadata,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('verifier', sa.String(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('rotated_at', UTCDateTime(), nullable=True),
)

TABLES: dict[str, CoreTable] = {
    'api_tokens': api_tokens,
    'command_history': command_history,
    'conversations': conversations,
    'db_settings': db_settings,
    'deploy_locks': deploy_locks,
    'deploy_secrets': deploy_secrets,
    'deploys': deploys,
    'github_integrations': github_integrations,
    'messages': messages,
    'otp_codes': otp_codes,
    'plan_applications': plan_applications,
    'plans': plans,
    'server_locks': server_locks,
    'servers': servers,
    'sessions': sessions,
    'support_reports': support_reports,
    'test_runs': test_runs,
    'test_steps': test_steps,
    'users': users,
    'vault': vault,
}
