// Starts Swagger UI on /docs. A served file, not an inline script: the page's CSP allows
// scripts from the app's own origin only.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null, // no badge fetched from validator.swagger.io
});
