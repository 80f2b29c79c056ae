// One bundle exposing the three Cornerstone3D packages to our viewer scripts.
export * as core from "@cornerstonejs/core";
export * as tools from "@cornerstonejs/tools";
export { default as dicomImageLoader } from "@cornerstonejs/dicom-image-loader";
export * as dicomImageLoaderNS from "@cornerstonejs/dicom-image-loader";
