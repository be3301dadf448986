FROM node:20-slim

WORKDIR /app

# Charts are drawn server-side with @napi-rs/canvas, which needs a system font for its labels.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*

# Dependencies first, so editing the code does not reinstall them. Dev dependencies stay: `npm start` runs tsx.
COPY package.json package-lock.json ./
RUN npm ci

# .dockerignore keeps .env (secrets), .data and the host's node_modules out of the image.
COPY . .

CMD ["npm", "start"]
