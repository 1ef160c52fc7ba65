// The sign-up page: posts the forms as JSON, keeps the login token for this tab only and shows
// the account `/me` returns.

const message = document.getElementById('message');

function say(text, ok) {
  message.textContent = text;
  message.className = ok ? 'ok' : 'error';
}

async function send(path, form) {
  const body = JSON.stringify(Object.fromEntries(new FormData(form)));
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `The site answered ${response.status}`);
  return answer;
}

async function showMe() {
  const token = sessionStorage.getItem('site-token');
  if (!token) return;
  const response = await fetch('/me', { headers: { authorization: `Bearer ${token}` } });
  const answer = await response.json().catch(() => ({}));
  document.getElementById('me').textContent = response.ok
    ? JSON.stringify(answer, null, 2)
    : answer.detail || 'Not logged in.';
}

document.getElementById('signup').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const account = await send('/signup', event.target);
    say(`Welcome, ${account.username}: your account is ready, log in below.`, true);
  } catch (e) {
    say(e.message, false);
  }
});

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const token = await send('/login', event.target);
    sessionStorage.setItem('site-token', token.access_token);
    say('Logged in.', true);
    await showMe();
  } catch (e) {
    say(e.message, false);
  }
});

const fromRace = new URLSearchParams(location.hash.slice(1)).get('code');
if (fromRace) document.querySelector('#signup [name=invite_code]').value = fromRace;
showMe();
