#!/bin/sh
# Creates the secret files docker-compose.yml mounts, empty (an empty file sets nothing), without
# touching one that exists. Then put each value you use into its file, e.g.
#   printf '%s' '123456:ABC...' > secrets/telegram_bot_token
# Run from the project folder: sh secrets/init.sh
set -e
cd "$(dirname "$0")"
umask 077
for name in dreams_router_api_key x402_private_key refill_from_private_key telegram_bot_token discord_bot_token exchange_api_key exchange_secret local_model_api_key dashboard_secret; do
  [ -e "$name" ] || : > "$name"
done
# The agent runs as uid 1000 (node) in its container and reads these through a bind mount: when your
# own uid is not 1000, let it read them (chmod 644 secrets/NAME, or chown 1000 secrets/NAME).
[ "$(id -u)" = 1000 ] || echo "Your uid is $(id -u), the container's is 1000: run 'sudo chown 1000 secrets/*_*' (or chmod 644) so the agent can read them."
echo "secrets/: one empty file per secret; write the values you use into them."
