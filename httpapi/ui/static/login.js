// The sign-in form: shows the server's verdict and carries ?next= through, with
// the dashboard's #route, which the browser keeps across the redirect here but
// never sends to the server.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const params = new URLSearchParams(location.search);
  if (params.get('error')) document.getElementById('login-error').hidden = false;
  let next = params.get('next') || '/';
  if (location.hash.length > 1 && !next.includes('#')) next += location.hash;
  // Only a path on this server (no control characters or backslashes, which
  // browsers drop or turn into '/'): the server checks it again.
  if (/^\/(?![\/\\])[^\x00-\x20\x7f\\]*$/.test(next)) {
    document.getElementById('next').value = next;
  }
});
