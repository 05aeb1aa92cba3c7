// Starts Swagger UI on /docs from files the app serves itself (no CDN, no
// inline script). Requests made with "Try it out" carry this browser's CSRF
// token, so a logged-in user can call unsafe methods with the session cookie.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrf = root.getAttribute("data-csrf");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      if (csrf && !request.headers["X-CSRF-Token"]) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    },
  });
})();
