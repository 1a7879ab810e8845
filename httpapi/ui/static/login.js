// The sign-in form: shows the server's verdict and carries ?next= through.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const params = new URLSearchParams(location.search);
  if (params.get('error')) document.getElementById('login-error').hidden = false;
  const next = params.get('next');
  // Only a path on this server: the server checks it again.
  if (next && next.startsWith('/') && !next.startsWith('//')) document.getElementById('next').value = next;
});
