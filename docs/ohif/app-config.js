// OHIF Viewer v3 data source for mritrus's DICOMweb server (PS3.18).
//
// Copy into OHIF's public/config/ (or pass as APP_CONFIG) and replace MRITRUS_ORIGIN with the
// platform's address, e.g. https://mritrus.example.org. /dicomweb serves every cohort the
// coordinator may see; /dicomweb/cohorts/<id> one cohort. Only coordinators and admins get
// answers (readers get 403), and only de-identified data is served.
//
// Credentials: OHIF turns requestOptions.auth = 'username:password' into HTTP Basic (the server
// checks the password once a minute per process, not on every image). With an API token instead
// (POST /api/auth/token/): auth: () => 'Bearer <token>'. When OHIF is served from another origin,
// list that origin in MRITRUS_DICOMWEB_CORS_ORIGINS on the platform.
//
// tests/dicomweb/test_clients.py reads this file and sends the requests OHIF sends with it.
window.config = {
  routerBasename: '/',
  showStudyList: true,
  defaultDataSourceName: 'mritrus',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'mritrus',
      configuration: {
        friendlyName: 'mritrus (de-identified cohorts)',
        name: 'mritrus',
        qidoRoot: 'MRITRUS_ORIGIN/dicomweb',
        wadoRoot: 'MRITRUS_ORIGIN/dicomweb',
        wadoUriRoot: 'MRITRUS_ORIGIN/dicomweb',
        qidoSupportsIncludeField: true,
        supportsReject: false,
        supportsStow: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: false,
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
        requestOptions: {
          auth: 'MRITRUS_USER:MRITRUS_PASSWORD',
        },
      },
    },
  ],
};
