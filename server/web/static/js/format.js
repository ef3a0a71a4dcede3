// How values are shown: times, countdowns, token kinds, secrets.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(epochSeconds, { seconds = false } = {}) {
  if (epochSeconds === null || epochSeconds === undefined) return "Never";
  return (seconds ? dateTimeSeconds : dateTime).format(new Date(epochSeconds * 1000));
}

export function formatCountdown(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

const TOKEN_KINDS = {
  totp: "Authenticator app",
  hotp: "Authenticator app (counter)",
  webauthn: "Security key",
  fob: "Fob",
};

export function tokenKind(type) {
  return TOKEN_KINDS[type] || type;
}

export function tokenName(token) {
  return token.description || (token.serial ? `Serial ${token.serial}` : tokenKind(token.type));
}

// What a table's Name column shows: the name the token was given, or nothing (the Type column says the kind).
export function givenName(token) {
  return token.description || (token.serial ? `Serial ${token.serial}` : "");
}

// A base32 secret in groups of four, easier to copy by hand.
export function groupSecret(secret) {
  return (secret.match(/.{1,4}/g) || []).join(" ");
}

// "12345678" → "1234 5678" (a fob challenge read aloud or typed digit by digit).
export function groupDigits(text) {
  return text.length > 6 ? (text.match(/.{1,4}/g) || []).join(" ") : text;
}

// Runs `tick(secondsLeft)` every second until `seconds` have passed, then `done()`. Returns a stopper.
export function countdown(seconds, tick, done) {
  const deadline = Date.now() + seconds * 1000;
  const update = () => {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(timer);
      done();
      return;
    }
    tick(left);
  };
  const timer = window.setInterval(update, 1000);
  update();
  return () => window.clearInterval(timer);
}
