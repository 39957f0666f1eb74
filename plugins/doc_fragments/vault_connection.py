# Copyright: aigateway.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection and login options shared by the vault_kv lookup and the vault_kv module.
    DOCUMENTATION = r"""
options:
  mount:
    description:
      - Mount point of the KV secrets engine.
    type: str
    default: secret
  kv_version:
    description:
      - KV engine version, V(1) or V(2). When not set, it is read from the mount's settings
        (C(sys/internal/ui/mounts), which any token allowed to read a path under the mount may call).
    type: int
    choices: [1, 2]
  url:
    description:
      - Vault or OpenBao address, for example V(https://vault.example.com:8200). Defaults to E(VAULT_ADDR).
    type: str
  namespace:
    description:
      - Namespace of the secret (Vault Enterprise, OpenBao). Defaults to E(VAULT_NAMESPACE).
    type: str
  auth_method:
    description:
      - How to log in. Without it, V(token) when a token is known (option or E(VAULT_TOKEN)), else V(approle) when
        O(role_id) and O(secret_id) are known, else V(token) from C(~/.vault-token).
    type: str
    choices: [token, approle, userpass, jwt, kubernetes]
  auth_mount_point:
    description:
      - Mount path of the auth method, when it is not the method's name (for example V(ci-approle)).
    type: str
  auth_namespace:
    description:
      - Namespace to log in to, when it differs from O(namespace) (a login in a parent namespace, say). V(/) is the
        root namespace. Defaults to O(namespace).
    type: str
  token:
    description:
      - Vault token for O(auth_method=token). Defaults to E(VAULT_TOKEN), then C(~/.vault-token).
    type: str
  role_id:
    description:
      - AppRole role ID. Defaults to E(VAULT_ROLE_ID).
    type: str
  secret_id:
    description:
      - AppRole secret ID. Defaults to E(VAULT_SECRET_ID).
    type: str
  username:
    description:
      - User name for O(auth_method=userpass).
    type: str
  password:
    description:
      - Password for O(auth_method=userpass).
    type: str
  jwt:
    description:
      - The JWT for O(auth_method=jwt).
    type: str
  jwt_file:
    description:
      - File holding the JWT for O(auth_method=jwt), when O(jwt) is not given.
    type: path
  role:
    description:
      - Auth role to log in as, for O(auth_method=jwt) and O(auth_method=kubernetes).
    type: str
  kubernetes_token_path:
    description:
      - Service account token file for O(auth_method=kubernetes).
    type: path
    default: /var/run/secrets/kubernetes.io/serviceaccount/token
  login_token_ttl:
    description:
      - Seconds a token obtained by login may live. A renewable token is shortened to this, so that it expires
        soon even if the revocation at the end of the process never happens. V(0) keeps the role's own TTL.
    type: int
    default: 900
  ca_cert:
    description:
      - CA bundle (PEM) to verify Vault's certificate. Defaults to E(VAULT_CACERT).
    type: path
  client_cert:
    description:
      - Client certificate (PEM) for a server that requires one. Defaults to E(VAULT_CLIENT_CERT).
    type: path
  client_key:
    description:
      - Key of O(client_cert). Defaults to E(VAULT_CLIENT_KEY).
    type: path
  validate_certs:
    description:
      - Verify Vault's TLS certificate. Defaults to the opposite of E(VAULT_SKIP_VERIFY), else V(true).
    type: bool
  timeout:
    description:
      - Seconds to wait for each request.
    type: float
    default: 30
  retries:
    description:
      - Retries after the first attempt, for connection errors, 412, 429 and 5xx answers.
    type: int
    default: 3
  retry_max_seconds:
    description:
      - Upper bound, in seconds, on the time one request may spend in retries.
    type: float
    default: 30
"""
